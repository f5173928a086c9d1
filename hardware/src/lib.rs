//! Card readers for the kiosk. This is the only crate that touches PC/SC.
