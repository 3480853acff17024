"""Consent: offers, grants and their lifecycle, and what a customer or brand sees of the log.

`offers` publishes and versions offers (`offer_schemas`: their API shapes and rules); `grants` is the
grant state machine, and `notices` the one way anything else follows its transitions (subscribers
wired by `broker.runtime`); `scopes` is the OAuth scope vocabulary; `renewal`, `retention` and
`deletion_report` keep grants going and their data's deletion on time; `access_log` shows the audit
log to its subjects. Consent imports only what is below it (accounts, audit, the vault): never oauth,
value or a service.
"""
