"""Documented limits that protect the app from decompression bombs and absurd headers."""

#: The most pixels (rows x columns of one frame) an image may have: 50 megapixels, about
#: twice the largest digital radiography detector (43 cm at 0.1 mm is 4300 x 4300 = 18.5 MP).
MAX_PIXELS = 50_000_000
