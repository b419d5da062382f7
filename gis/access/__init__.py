"""Who may see and do what: sign-in and roles, the audit trail and the privacy policy."""
