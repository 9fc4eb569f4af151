"""Common library of the COC order pipeline services."""
