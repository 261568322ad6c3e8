// Simulated platform jobs of seed 000: data ETL, security scan, billing report, tenant backup.
// Usage: node platform.mjs <kind> [step]  (GANTRY_PARAMETERS holds the parameters)
import { log, maybeFail, output, pace, params, rng, sleep } from './lib.mjs';

const p = params();
const kind = process.argv[2];
const name = process.env.GANTRY_STEP || kind;
const rand = rng(JSON.stringify(p) + name);
const unit = pace(p);
maybeFail(p, name);
const tenant = process.env.GANTRY_TENANT || p.tenant || 'default';

switch (name) {
  case 'extract': {
    const rows = 1000 + Math.floor(rand() * 9000);
    await sleep(unit);
    const src = p.source_config ?? {};
    log(`extracted ${rows} records from ${src.type ?? 'kafka'}:${src.topic ?? src.table_name ?? 'events'} for ${tenant}`);
    output({ extracted: rows });
    break;
  }
  case 'transform': {
    await sleep(unit);
    log(`transformed with ${p.transformation_script ?? 'identity'}; dropped ${Math.floor(rand() * 20)} malformed records`);
    break;
  }
  case 'load': {
    await sleep(unit);
    const dst = p.destination_config ?? {};
    log(`loaded into ${dst.type ?? 'delta_lake'}:${dst.table_name ?? 'events_processed'}`);
    output({ destination: dst.table_name ?? 'events_processed', loaded: true });
    break;
  }
  case 'security_scan': {
    const frameworks = p.frameworks ?? ['PCI-DSS', 'GDPR'];
    const findings = {};
    for (const f of frameworks) {
      await sleep(unit);
      findings[f] = Math.floor(rand() * 4);
      log(`${p.scan_type ?? 'full'} scan of ${p.target ?? tenant} against ${f}: ${findings[f]} findings`);
    }
    const total = Object.values(findings).reduce((a, b) => a + b, 0);
    output({ target: p.target ?? tenant, findings, total_findings: total, passed: total === 0 });
    break;
  }
  case 'billing_report': {
    const days = { daily: 1, weekly: 7, monthly: 30, quarterly: 91, yearly: 365 }[p.period ?? 'monthly'] ?? 30;
    let total = 0;
    for (let d = 0; d < Math.min(days, 10); d++) {
      await sleep(unit / 2);
      total += 100 + rand() * 900;
    }
    total = Number(((total * days) / Math.min(days, 10)).toFixed(2));
    log(`${p.period ?? 'monthly'} billing report for ${tenant}: ${total} ${p.currency ?? 'USD'}`);
    output({ tenant, period: p.period ?? 'monthly', currency: p.currency ?? 'USD', total, report_path: `/tmp/gantry/billing/${tenant}-${p.period ?? 'monthly'}.csv` });
    break;
  }
  case 'snapshot':
  case 'tenant_backup': {
    const type = p.type ?? p.backup_type ?? 'full';
    const gb = Number(((type === 'full' ? 50 : 5) * (0.5 + rand())).toFixed(1));
    for (let i = 1; i <= 4; i++) {
      await sleep(unit);
      log(`${type} backup of ${tenant}: ${i * 25}%`);
    }
    output({ tenant, type, size_gb: gb, encrypted: p.encryption !== false, backup_id: `bk-${tenant}-${type}-${Math.floor(rand() * 1e6)}` });
    break;
  }
  case 'verify': {
    await sleep(unit);
    log(`verified backup checksums for ${tenant}`);
    break;
  }
  default:
    process.stderr.write(`platform.mjs: unknown kind '${name}'\n`);
    process.exit(2);
}
