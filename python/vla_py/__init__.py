"""Python side of vla-pipelines (trainer and local inference), run by activities as child processes."""
