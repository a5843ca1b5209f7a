"""Storage: the mail store (Maildir + index), the file store, calendars."""
