import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createFrameDecoder } from '../src/frame-decoder.js';

const distIndex = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** A child that claims stdout, prints noise the usual ways, then writes one 3 MB frame and exits. */
const childSource = `
const { claimStdoutForFrames, encodeFrame } = await import(${JSON.stringify(distIndex)});
const frames = claimStdoutForFrames();
console.log('noise from console.log');
process.stdout.write('noise from process.stdout.write\\n');
frames.on('error', (error) => { process.stderr.write('FRAME ERROR ' + error.message + '\\n'); process.exit(3); });
frames.write(encodeFrame({ text: 'a'.repeat(3 * 1024 * 1024) }), () => process.exit(0));
`;

describe('claimStdoutForFrames (child process)', () => {
  it('keeps stdout for frames, survives a full pipe, and sends other output to stderr', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', childSource], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const chunks: Buffer[] = [];
    // A slow reader: the 3 MB frame fills the pipe before anything is read.
    child.stdout.pause();
    setTimeout(() => {
      child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      child.stdout.resume();
    }, 300);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(code).toBe(0);
    const decoder = createFrameDecoder();
    const frames = decoder.push(Buffer.concat(chunks));
    expect(frames).toHaveLength(1);
    expect(frames[0]?.kind === 'message' && (frames[0].value as { text: string }).text.length).toBe(3 * 1024 * 1024);
    expect(decoder.bufferedBytes).toBe(0);
    expect(stderr).toBe('noise from console.log\nnoise from process.stdout.write\n');
  });
});
