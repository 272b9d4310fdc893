"""People and what they may do: the three roles, kept as Django groups (`accounts.roles`)."""
