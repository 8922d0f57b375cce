DROP TABLE question_notes;
