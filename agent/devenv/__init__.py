"""The built-in local environment (moto, DNS and IMDS emulators on 127.0.0.1) and the network-namespace lab."""
