"""Online payment of fees (level 4): providers behind one interface, orders, notifications and e-receipts."""
