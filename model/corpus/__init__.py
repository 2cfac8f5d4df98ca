"""Reading corpora: records, link cleaning, canonical genres, the prepared corpus, the download
and the synthetic Wikipedia-shaped corpus. No torch."""
