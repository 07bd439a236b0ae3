"""Channel adapters: one small class per transport behind one interface (``base.Channel``)."""
