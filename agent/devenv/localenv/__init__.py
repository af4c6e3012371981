"""Built-in local environment: real servers on 127.0.0.1 that stand in for AWS, DNS and IMDS."""
