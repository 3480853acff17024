"""Mail to customers through an outbox, as webhooks go to brands.

    runtime.mail.enqueue(session, customer_id, to=address, template="verify_email", context={...})

writes the message in the caller's transaction (sealed under the customer's data key: see
`broker.mail.outbox`); `runtime.mail_delivery` (the worker, `broker.mail.delivery`) sends it later,
with retries and backoff, over SMTP (`CONSENTRY_SMTP_URL`) or, with none configured, as `.eml` files
under `<data_dir>/mail/` (`broker.mail.sink`). Templates live in `templates/` as
`<name>.subject.txt`, `<name>.txt` and `<name>.html`.
"""

from __future__ import annotations

from broker.mail.delivery import MailDelivery
from broker.mail.outbox import Mail
from broker.mail.rendering import Rendered, Templates
from broker.mail.transport import MailRefused, SmtpTransport, Transport

__all__ = ["Mail", "MailDelivery", "MailRefused", "Rendered", "SmtpTransport", "Templates", "Transport"]
