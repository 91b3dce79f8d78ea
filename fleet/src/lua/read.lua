-- read: the record as it is.
return reply('ok', current())
