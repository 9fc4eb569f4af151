"""Support console of the COC order pipeline."""
