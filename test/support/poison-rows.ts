// A row PostgreSQL refuses, as a real constraint or trigger would: every batch holding it fails
// in the database, whatever Sluice does, until the trigger goes.
import type pg from "pg";

/** From now on, a row whose id is `poison` is refused; `drop trigger refuse_poison on upload_rows` ends it. */
export async function refusePoisonRows(sql: pg.Pool): Promise<void> {
  await sql.query(`
    create function refuse_poison() returns trigger language plpgsql as $$
    begin
      if new.data ->> 'id' = 'poison' then raise exception 'row % is poison', new.row_number; end if;
      return new;
    end $$;
    create trigger refuse_poison before insert on upload_rows for each row execute function refuse_poison();`);
}
