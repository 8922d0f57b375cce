DROP TABLE section_statuses;
DROP TABLE section_assignments;
