"""What the commands run: one check, the daemon loop, explain and the presign audit."""
