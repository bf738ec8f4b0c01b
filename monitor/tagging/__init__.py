"""Topic and facet tagging (EMM-style weighted rules over one Aho-Corasick pass). No I/O."""
