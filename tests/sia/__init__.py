"""SIA DC-09: a panel simulator written from the standard, and the receiver's tests."""
