"""analytics: fact tables fed by events, rollups, the KPI API."""
