/**
 * The live dashboard (issue 13) in a real browser: playwright-core drives Debian's chromium,
 * headless, against the real `cairn up`. A wrong token shows no data; the right one shows the
 * three nodes up; fio over NBD makes vol0's IOPS chart rise; a node stopped (SIGSTOP) turns down
 * on the page within 5 s of the map marking it down (itself timed: downAfterMs 4 s, + slack
 * for 2 cores). Screenshots of each step go
 * to test-output/ui/ in the repository (kept for a look after the run). Needs Debian's chromium
 * and about a minute: runs under CAIRN_SLOW=1 (`npm run test:ui`, which `.ci/run` runs).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cairnUp, tempDataDir, type Up } from '../helpers/cairn-up.ts';
import { have } from '../helpers/tools.ts';
import { slowSerial } from '../helpers/slow.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const OUT = join(ROOT, 'test-output', 'ui');
const CHROMIUM = process.env.CAIRN_CHROMIUM ?? '/usr/bin/chromium';
/** downAfterMs of cairn up's clusters (DEFAULT_MEMBERSHIP), and slack for a loaded 2-core machine. */
const DOWN_AFTER_MS = 4000;
const SLACK_MS = 10000;
/** The dashboard polls every second; a poll asks every node (3 s timeouts): lag allowed after the map changes. */
const UI_LAG_MS = 5000;

slowSerial('dashboard: wrong token shows nothing; nodes, live IOPS under fio, a stopped node turns down', async (t) => {
  t.timeout(300000);
  if (!existsSync(CHROMIUM)) return t.fail(`no ${CHROMIUM} (apt-get install --no-install-recommends chromium)`);
  if (!(await have('fio'))) return t.fail('fio is required');
  mkdirSync(OUT, { recursive: true });
  const d = tempDataDir();
  let up: Up | null = null;
  let browser: Browser | null = null;
  let fio: ReturnType<typeof spawn> | null = null;
  let stopped = 0;
  try {
    up = await cairnUp(d.dir, ['--nodes', '3', '--devices', '1', '--device-size', '512MiB', '--partitions', '2', '--volume-size', '256MiB', '--nvmf-paths', '0'], 120000);
    const config = JSON.parse(readFileSync(join(d.dir, 'cluster.json'), 'utf8')) as { token: string; nodes: Array<{ host: string; apiPort: number }> };
    const base = `http://${config.nodes[0].host}:${config.nodes[0].apiPort}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    const page: Page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const shot = (name: string) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

    // Wrong token: the API answers 401 and the page shows nothing.
    await page.goto(`${base}/ui`);
    await page.fill('#token', 'not-the-token');
    await page.click('#login button');
    await page.waitForFunction("/Wrong token/.test(document.getElementById('login-error').textContent || '')", undefined, { timeout: 15000 });
    t.true(await page.isHidden('#dash'), 'the dashboard stays hidden');
    t.is(await page.evaluate<number>('window.cairnDashboard.nodes.length'), 0, 'no node data');
    t.is(await page.locator('#tree li').count(), 0);
    await shot('1-wrong-token');

    // The token: three nodes up in the map tree.
    await page.fill('#token', config.token);
    await page.click('#login button');
    await page.waitForSelector('.node[data-state="up"]', { timeout: 20000 });
    await page.waitForFunction('document.querySelectorAll(\'.node[data-state="up"]\').length === 3', undefined, { timeout: 20000 });
    t.is(await page.locator('.node[data-state="up"]').count(), 3, 'three nodes up');
    await page.waitForSelector('tr[data-volume="vol0"]', { timeout: 20000 });
    await shot('2-cluster');

    // fio over NBD: vol0's IOPS chart rises.
    fio = spawn('fio', ['--name=ui', '--ioengine=nbd', `--uri=${up.uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', '--size=64m', '--time_based', '--runtime=30'], { stdio: 'ignore' });
    await page.waitForFunction('(window.cairnDashboard.iops.vol0 || 0) > 100', undefined, { timeout: 30000 });
    const iops = await page.evaluate<number>('window.cairnDashboard.iops.vol0');
    t.log(`the dashboard shows vol0 at ${iops} IOPS under fio`);
    t.true(iops > 100);
    t.true(Number(await page.getAttribute('tr[data-volume="vol0"] td[data-iops]', 'data-iops')) > 0, 'the volume table shows its IOPS');
    t.is(await page.locator('#chart-iops .uplot').count(), 1, 'the IOPS chart is drawn');
    await page.waitForTimeout(3000); // a few more points on the chart for the screenshot
    await shot('3-fio-iops');
    fio.kill('SIGINT');

    // Node 2 stopped (SIGSTOP: cairn up's supervisor would restart a killed node at once): the
    // dashboard shows it down within the cluster's detection time (the map marking it down,
    // timed through the API alongside) plus its own 1 s poll.
    const killedAt = Date.now();
    stopped = up.nodePid(2);
    process.kill(stopped, 'SIGSTOP');
    let mapDownMs = -1;
    const mapWatch = (async () => {
      while (Date.now() - killedAt < 60000) {
        const m = (await (await fetch(`${base}/v1/map`, { headers: { authorization: `Bearer ${config.token}` } })).json()) as { nodes: Array<{ id: number; up: boolean }> };
        if (m.nodes.find((n) => n.id === 2)?.up === false) return (mapDownMs = Date.now() - killedAt);
        await new Promise((r) => setTimeout(r, 100));
      }
      return -1;
    })();
    await page.waitForSelector('.node[data-node-id="2"][data-state="down"]', { timeout: 60000 });
    const seen = Date.now() - killedAt;
    await mapWatch;
    t.log(`node 2 shown down ${seen} ms after SIGSTOP; the map marked it down after ${mapDownMs} ms (downAfterMs ${DOWN_AFTER_MS})`);
    t.true(mapDownMs > 0 && seen <= mapDownMs + UI_LAG_MS, `the dashboard followed the map within ${UI_LAG_MS} ms`);
    t.true(mapDownMs <= DOWN_AFTER_MS + SLACK_MS, `the cluster detected it within ${DOWN_AFTER_MS + SLACK_MS} ms`);
    t.is(await page.locator('.node[data-state="up"]').count(), 2);
    await shot('4-node-down');
  } finally {
    if (stopped) process.kill(stopped, 'SIGCONT');
    fio?.kill('SIGKILL');
    await browser?.close();
    await up?.stop();
    d.cleanup();
  }
});
