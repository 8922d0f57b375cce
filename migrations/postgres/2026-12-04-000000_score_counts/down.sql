DROP TABLE score_counts;
