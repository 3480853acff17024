"""Fresh Basket: a small grocery brand's web app on the brand SDK.

"Connect with Consentry" sends the shopper through the broker's consent screen; back here, the app
reads only the fields granted, picks recipes and a box from the diet, household and life stage,
and delivers the voucher its offer declared. When the shopper ends the sharing (in the portal, or
with "Disconnect" here), the app deletes what it held and attests the deletion to the broker.

Run it next to `make run` with `make demo-brand` (http://127.0.0.1:8001).
"""

from clients.examples.grocery.app import GroceryConfig, create_app

__all__ = ["GroceryConfig", "create_app"]
