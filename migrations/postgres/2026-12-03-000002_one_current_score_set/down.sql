DROP INDEX score_sets_one_current;
