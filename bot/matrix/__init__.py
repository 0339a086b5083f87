"""Matrix rooms: police duty officers (Tchap is Matrix), end-to-end encrypted with matrix-nio."""
