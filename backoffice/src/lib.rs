//! The back-office: the authority on balances, in front of SQLite or PostgreSQL.
