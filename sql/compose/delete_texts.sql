-- {{ table }} is chosen by the code (preference_texts or author_texts), never by input.
DELETE FROM {{ table }} WHERE ds = :ds;
