"""Customer accounts: sign-up, passwords (argon2id), sessions, login throttling, deletion."""
