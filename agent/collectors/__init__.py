"""Collectors: each gathers one kind of evidence about the path S3 traffic takes."""
