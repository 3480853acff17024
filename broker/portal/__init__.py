"""The customer portal: server-rendered pages (Jinja2), our own CSS, no external resources."""
