"""Identity: users and their roles, login with throttling, bearer tokens and integrator API keys."""
