//! The canteen kiosk: the engine decides, the ledger persists, the UI only displays.
