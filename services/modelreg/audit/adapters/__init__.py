"""PostgreSQL and the event codec: the fold into audit_events and its reader."""
