"""A city's own registry (登记信息): import and export of every kind in Chinese templates, with history."""
