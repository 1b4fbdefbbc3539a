"""Analytics helpers (issue #4): detector scoring against a simulated pilot's ground truth."""
