"""Working the patient base over the published projection: segments (``segments``),
recall and care worklists (``worklists``) and measured outreach (``outreach``)."""
