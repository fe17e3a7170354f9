import { CompareEngine } from '../compare/engine.js';
import { dissect } from '../compare/wire/dissect.js';
import { FrameInfo } from '../compare/wire/frame-info.js';
import { buildTcp } from '../compare/wire/build.js';
const payload = Buffer.alloc(1448, 7);
const b={src:'192.168.0.2',dst:'10.0.0.1',srcPort:80,dstPort:1024,ack:7777,flags:0x18,payload};
const P=buildTcp({...b,seq:0}), Q=buildTcp({...b,seq:0});
const e=new CompareEngine(); const info=new FrameInfo();
for (let r=0;r<6;r++){
  let t=process.hrtime.bigint(); for(let s=0;s<200000;s++){ dissect(P,0,P.length,info);} const d=Number(process.hrtime.bigint()-t)/200000;
  t=process.hrtime.bigint(); let x=0; for(let s=0;s<200000;s++){ x+=P.compare(Q,54,1502,54,1502);} const c=Number(process.hrtime.bigint()-t)/200000;
  t=process.hrtime.bigint(); for(let s=0;s<100000;s++){ const seq=(r*100000+s)*1448; P.writeUInt32BE(seq>>>0,38); Q.writeUInt32BE((seq+5)>>>0,38); e.push('primary',P,0,s,0); e.push('secondary',Q,0,s,0);} const p=Number(process.hrtime.bigint()-t)/200000;
  console.log('dissect', d.toFixed(0), 'compare', c.toFixed(0), 'push', p.toFixed(0));
}
