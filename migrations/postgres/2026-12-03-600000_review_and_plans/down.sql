DROP TABLE improvement_actions;
DROP TABLE improvement_thresholds;
DROP TABLE review_queries;
DROP TABLE review_sections;
