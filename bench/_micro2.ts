import { CompareEngine } from '../compare/engine.js';
import { buildTcp } from '../compare/wire/build.js';
const payload = Buffer.alloc(1448, 7);
const b={src:'192.168.0.2',dst:'10.0.0.1',srcPort:80,dstPort:1024,ack:7777,flags:0x18,payload};
const P=buildTcp({...b,seq:0}), Q=buildTcp({...b,seq:0});
const e=new CompareEngine();
const res=[];
for (let r=0;r<15;r++){
  const t=process.cpuUsage();
  for(let s=0;s<100000;s++){ const seq=(r*100000+s)*1448; P.writeUInt32BE(seq>>>0,38); Q.writeUInt32BE((seq+5)>>>0,38); e.push('primary',P,0,s,0); e.push('secondary',Q,0,s,0);}
  {const u=process.cpuUsage(t); res.push((u.user+u.system)*1000/200000);}
}
console.log(res.map(x=>x.toFixed(0)).join(' '));
