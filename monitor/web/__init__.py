"""The web pages and the signed correction links of DESIGN §8 (see `pages`, `sign`, `links`)."""
