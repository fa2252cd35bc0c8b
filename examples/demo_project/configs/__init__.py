"""Configs of the demo project; deriva-ml-run imports this package and every module in it."""
