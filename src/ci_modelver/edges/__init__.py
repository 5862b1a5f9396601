"""The two edges that write: the terminal and GitHub Actions."""
