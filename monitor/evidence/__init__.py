"""Evidence behind each finding: the findings and exchanges read back from traffic logs
(`index`), rendered as pages (`page`) and served behind the admin token (`web`)."""
