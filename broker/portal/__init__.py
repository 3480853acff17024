"""The customer portal: server-rendered pages (Jinja2), our own CSS, no external resources.

One module per page family, each with its own router: `login` (log in, sign up, log out),
`signin_pages` (second factor, passkey login), `recovery` (password reset, sign-in links),
`email_pages`, `grants` (dashboard, a grant's page and its actions), `profile`, `account`,
`password`, `security`, `sessions`, and `authorize` (the OAuth consent screen at /oauth/authorize).
Every page declares who may see it with `guards` (a logged-out browser is sent to log in; a form
must carry its CSRF token); `errors` draws the HTML page for any error under /portal; `html` binds
the templates to `broker.web.pages`. What a page shows is assembled in `views` and `step_up`.
"""
