"""Use cases: one thing a customer, a brand or the broker itself does, orchestrated across the domain
packages below (accounts, consent, value, oauth, receipts, webhooks, mail) in one transaction.

A module belongs here when it needs two or more domain packages that must not know about each other,
or a service (mail, receipts): a brand's profile read (`reads`: oauth for the token, consent for the
grant, value for what is owed, the vault, the audit log), the consent decision, a customer's export,
account deletion, the grant views the APIs and the portal show, email verification, recovery by mail,
security mail, and the lifecycle sweep. What one domain package can do alone stays in that package.

Use cases are plain Python over SQLModel sessions, like the domain: no FastAPI or Starlette, no Jinja,
no HTTP schemas (they return domain rows or plain dataclasses; `broker.api` and `broker.portal` turn
those into pydantic responses and pages). They leave the commit to the caller's unit of work, except
where the commit is the point: a read is answered once its batch committed (`broker.audit.group_commit`)
and the lifecycle sweep commits a batch at a time.
`broker.runtime` builds them; `broker.api`, `broker.portal` and `broker.cli` call them.
"""
