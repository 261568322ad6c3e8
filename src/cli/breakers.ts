/** `gantry breakers`: circuit breakers per executor queue and template; `breakers reset KEY`. */
import type { Command } from 'commander';
import { clip, out, printJson, table, time } from './output.ts';
import { globals, type Session } from './session.ts';

export function breakerCommands(program: Command, session: Session): void {
  const breakers = program.command('breakers').summary('circuit breakers: list, or reset one');
  breakers
    .command('list', { isDefault: true })
    .summary('every breaker with its state (the default)')
    .action(async (_o: unknown, cmd: Command) => {
      const res = await session.connect(cmd).breakers();
      if (globals(cmd).output === 'json') return printJson(res);
      if (res.breakers.length === 0) return out(`no breaker has tripped yet (opens after ${res.threshold} consecutive failures)`);
      out(table(
        ['KEY', 'STATE', 'FAILURES', 'OPENED', 'PROBE_AT', 'LAST_ERROR'],
        res.breakers.map((b) => [b.key, b.state, String(b.consecutive_failures), time(b.opened_at), time(b.probe_at), clip(b.last_error ?? '', 50)]),
      ));
    });
  breakers
    .command('reset')
    .summary('close a breaker now; its queued jobs run again')
    .argument('<key>', 'breaker key, e.g. executor:process or handler:send-email')
    .action(async (key: string, _o: unknown, cmd: Command) => {
      const b = await session.connect(cmd).resetBreaker(key);
      if (globals(cmd).output === 'json') return printJson(b);
      out(`breaker ${b.key} ${b.state}`);
    });
}
