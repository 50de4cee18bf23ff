"""The audit service: the trail of every accepted event of every internal topic."""
