/** GANTRY_SQL_PROFILE=1 prints time per statement at exit (a development aid). */
export const PROFILE = process.env.GANTRY_SQL_PROFILE === '1' ? sqlProfile() : null;

function sqlProfile() {
  const stats = new Map<string, { n: number; ms: number }>();
  process.on('exit', () => {
    const rows = [...stats.entries()].sort((a, b) => b[1].ms - a[1].ms);
    let n = 0;
    // insertMany's own line ("INSERT INTO table") repeats the statement it runs; BEGIN rides with the next one, not counted.
    for (const [sql, s] of rows) if (!/^INSERT INTO \w+$/.test(sql)) n += s.n;
    process.stderr.write(`${n} statements in all (${rows.length} texts); the 40 costliest:\n`);
    for (const [sql, s] of rows.slice(0, 40)) process.stderr.write(`${s.ms.toFixed(0).padStart(7)} ms ${String(s.n).padStart(8)}× ${sql.replace(/\s+/g, ' ').slice(0, 150)}\n`);
  });
  return {
    add(sql: string, ms: number) {
      const s = stats.get(sql) ?? { n: 0, ms: 0 };
      s.n++;
      s.ms += ms;
      stats.set(sql, s);
    },
  };
}

