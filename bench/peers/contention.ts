/**
 * How busy the rest of the machine was during a run (Linux /proc only; elsewhere it reports null).
 * Counts CPU time of every process except this one, the Redis server and the system PostgreSQL
 * (/usr/lib/postgresql/…), so a figure measured while something else was running can be flagged.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const CLK_TCK = 100;

function foreignTicks(): Map<string, number> | null {
  const out = new Map<string, number>();
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  for (const pid of dirs) {
    if (Number(pid) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]); // utime, stime
      if (!ticks) continue;
      let exe = '';
      try {
        exe = readlinkSync(`/proc/${pid}/exe`);
      } catch {
        /* kernel thread or gone */
      }
      // Debian's redis-server is a link to redis-check-rdb, so match Redis by its process name.
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (comm.startsWith('redis-server') || exe.includes('redis') || exe.startsWith('/usr/lib/postgresql/')) continue;
      out.set(pid, ticks);
    } catch {
      /* process ended meanwhile */
    }
  }
  return out;
}

/** Starts measuring; the returned function gives other processes' CPU use since then, in cores (1.0 = one core busy). */
export function watchContention(): () => number | null {
  const t0 = performance.now();
  const start = foreignTicks();
  return () => {
    const end = foreignTicks();
    if (start === null || end === null) return null;
    const seconds = (performance.now() - t0) / 1000;
    // Processes that exited during the run are missed; new ones count from their start: a rough gauge.
    let ticks = 0;
    for (const [pid, t] of end) ticks += t - (start.get(pid) ?? 0);
    return Math.max(0, ticks / CLK_TCK / seconds);
  };
}

/**
 * CPU time (ms) used so far by every process of a local database service — PostgreSQL (backends, WAL writer,
 * checkpointer…) or Redis — or null when none runs on this machine (a remote server, or not Linux). Read before and
 * after a drain: the database's share of a job's CPU.
 */
export function serviceCpuMs(service: 'postgres' | 'redis'): number | null {
  let dirs: string[];
  try {
    dirs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  let ticks = 0;
  let found = false;
  for (const pid of dirs) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (service === 'postgres' ? comm !== 'postgres' : !comm.startsWith('redis-server')) continue;
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(rest[11]) + Number(rest[12]);
      found = true;
    } catch {
      /* process ended meanwhile */
    }
  }
  return found ? (ticks * 1000) / CLK_TCK : null;
}
