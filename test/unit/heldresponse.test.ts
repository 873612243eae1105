/** A step's held response: sent once, before the stop's messages, or on its own after a while. */
import * as assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { HeldResponse, inOneWrite } from '../../src/adapter/heldresponse';

describe('adapter/heldresponse', () => {
  it('sends a held response once, when flushed', () => {
    const sent: string[] = [];
    const h = new HeldResponse(1000);
    h.hold(() => sent.push('next'));
    assert.deepEqual(sent, []);
    h.flush();
    h.flush();
    assert.deepEqual(sent, ['next']);
  });

  it('sends it on its own once the step has run for maxMs', async () => {
    const sent: string[] = [];
    const h = new HeldResponse(20);
    h.hold(() => sent.push('next'));
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(sent, ['next']);
    h.flush();
    assert.deepEqual(sent, ['next']);
  });

  it('sends the previous response before holding another', () => {
    const sent: string[] = [];
    const h = new HeldResponse(1000);
    h.hold(() => sent.push('a'));
    h.hold(() => sent.push('b'));
    assert.deepEqual(sent, ['a']);
    h.flush();
    assert.deepEqual(sent, ['a', 'b']);
  });

  it('hands the stream the messages of one stop as one chunk, in order', () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    const write = out.write.bind(out);
    out._writev = (parts, cb) => {
      chunks.push(parts.map((p) => String(p.chunk)).join(''));
      cb();
    };
    inOneWrite(out, () => {
      write('response;');
      write('stopped;');
      write('state;');
    });
    assert.deepEqual(chunks, ['response;stopped;state;']);
  });
});
