"""Thin HTTP routers: parse, call one service, return a public schema."""
